"""openvino of otx_xai."""
