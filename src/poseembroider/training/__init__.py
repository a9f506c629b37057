"""One Trainer for every model: loop, LR schedules, checkpoints, resume, logs, DDP (see `trainer.Trainer`)."""
