"""models of otx_xai."""
