-- The first and last accounting date of the landed order events: the range a full
-- materialization covers.
with events as (
    select
        date
    from order_events
)

select
    min(date) as first_date,
    max(date) as last_date,
    count(*) as events
from events
