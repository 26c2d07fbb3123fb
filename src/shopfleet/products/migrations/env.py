from shopfleet.common.migrations import run_env
from shopfleet.products.models import Base

run_env(Base.metadata)
