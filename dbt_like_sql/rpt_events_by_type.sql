-- Landed order events per type, and how many of them are posted: what an import and a
-- posting run have done, at a glance.
with events as (
    select
        type,
        posted_at
    from order_events
)

select
    type,
    count(*) as events,
    count(posted_at) as posted
from events
group by
    type
order by
    type
