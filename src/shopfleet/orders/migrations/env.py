from shopfleet.common.migrations import run_env
from shopfleet.orders.models import Base

run_env(Base.metadata)
