"""lmgym: language tasks as Gymnasium environments (actions are tokens, rewards come from scorers).

``import lmgym`` registers every ``lmgym/...`` env and imports neither torch nor any model code::

    import gymnasium as gym, lmgym
    env = gym.make("lmgym/Copy-v0")
"""

from lmgym.errors import LmgymError
from lmgym.registration import env_ids, register_envs
from lmgym.scorers import Scorer, WeightedSum, make_scorer, register_scorer, scorer_names
from lmgym.task import Example, Task
from lmgym.token_env import TokenEnv
from lmgym.tokenizer import build_word_tokenizer, load_tokenizer

__version__ = "0.1.0"

register_envs()

__all__ = [
    "Example",
    "LmgymError",
    "Scorer",
    "Task",
    "TokenEnv",
    "WeightedSum",
    "__version__",
    "build_word_tokenizer",
    "env_ids",
    "load_tokenizer",
    "make_scorer",
    "register_scorer",
    "scorer_names",
]
