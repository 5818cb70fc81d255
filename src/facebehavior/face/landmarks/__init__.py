"""Dense facial landmarks and the ROI tracking that drives them.

``facemesh``: MediaPipe FaceMesh-468 (v1) and the shared ROI / crop / projection helpers;
``facemesh_v2``: Face Mesh V2 (478 points with irises); ``blendshapes``: Blendshape V2 (52
expression scores from V2 landmarks); ``indices``: point numbers of both topologies.
"""
