-- Debit and credit of the whole ledger per currency: they must be equal.
with entries as (
    select
        currency,
        currency_precision,
        debit,
        credit
    from ledger_entries
)

select
    currency,
    max(currency_precision) as currency_precision,
    count(*) as entries,
    sum(debit) as debit,
    sum(credit) as credit
from entries
group by
    currency
order by
    currency
