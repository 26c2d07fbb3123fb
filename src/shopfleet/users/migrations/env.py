from shopfleet.common.migrations import run_env
from shopfleet.users.models import Base

run_env(Base.metadata)
