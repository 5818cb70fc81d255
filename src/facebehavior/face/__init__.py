"""Faces: detection, dense landmarks, alignment, head pose, tracking and geometry."""
