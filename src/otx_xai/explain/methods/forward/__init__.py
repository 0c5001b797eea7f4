"""Methods computed in the model's forward pass, one file per method: Recipro-CAM, ViT Recipro-CAM,
Activation Map, Eigen-CAM, the detector's class and box maps, the instance-segmentation mask maps."""
