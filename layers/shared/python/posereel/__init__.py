"""PoseReel: find people in a video, track them, measure their movement and cut a highlight reel."""

__version__ = "0.1.0"
