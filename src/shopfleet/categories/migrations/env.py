from shopfleet.categories.models import Base
from shopfleet.common.migrations import run_env

run_env(Base.metadata)
