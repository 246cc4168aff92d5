"""SPG-Net: segmentation prediction and guidance network for image inpainting."""
