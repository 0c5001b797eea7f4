"""engine of otx_xai."""
