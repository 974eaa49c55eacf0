"""export_format: the export folder's contract as code, with no TensorFlow, Keras, ncsn_tf or Qt.

Every reader of an export (the exporter's verification, `export.runtime`, the
desktop app, `ncsn_tf.evaluate`) goes through this package; docs/DESIGN.md
shows the layering. It is a top-level package, not `export.format`, because
`ncsn_tf` reads exports (evaluation) and must not import `export`, which
imports `ncsn_tf`.
"""
