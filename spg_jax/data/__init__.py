"""Data: TFDS builders, class tables and label maps, holes, the tf.data input pipeline."""
