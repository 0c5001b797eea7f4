"""explain of otx_xai."""
