-- Events whose entries do not balance in a currency, for accounting dates in a range.
-- Balance is checked per event and currency, never per day: two wrong events can hide
-- each other in a daily total.
with entries as (
    select
        event_id,
        order_id,
        date,
        currency,
        debit,
        credit
    from ledger_entries
    where date between :date_from and :date_to
),

per_event as (
    select
        event_id,
        order_id,
        min(date) as date,
        currency,
        sum(debit) as debit,
        sum(credit) as credit
    from entries
    group by
        event_id,
        order_id,
        currency
)

select
    event_id,
    order_id,
    date,
    currency,
    debit,
    credit,
    debit - credit as difference
from per_event
where debit <> credit
order by
    date,
    event_id,
    currency
