"""Models of the video suite (bench.suites.video): action recognition and fall detection on clips,
frame streams and pose sequences, in plain PyTorch with seeded random weights."""
