"""Dense facial landmarks (FaceMesh-468) and the ROI tracking that drives them."""
