"""explain methods of otx_xai."""
