-- Stale and quarantined lines per outcome and reason, most frequent first.
with rejected as (
    select
        outcome,
        reason
    from rejected_events
)

select
    outcome,
    reason,
    count(*) as lines
from rejected
group by
    outcome,
    reason
order by
    lines desc,
    outcome,
    reason
