"""tme_lib."""
