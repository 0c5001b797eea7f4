"""data of otx_xai."""
