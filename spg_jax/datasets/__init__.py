"""TFDS builders the catalog lacks, and the class tables they share."""
