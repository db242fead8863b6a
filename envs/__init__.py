"""lmgym.envs: one module per task family. Import envs through ``gym.make("lmgym/...")``."""
