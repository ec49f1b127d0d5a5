from recbole_basrec.trainer.checkpoint import DiskFull, ModelState, ResumeState, load_checkpoint
from recbole_basrec.trainer.trainer import BASRecTrainer, Stage
