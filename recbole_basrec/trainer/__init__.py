from recbole_basrec.trainer.trainer import BASRecTrainer, load_checkpoint
