-- Debit and credit per accounting date, account and currency: the daily roll-up an
-- accountant reconciles against the journal.
with entries as (
    select
        date,
        account,
        account_type,
        currency,
        debit,
        credit
    from ledger_entries
    where date between :date_from and :date_to
)

select
    date,
    account,
    account_type,
    currency,
    count(*) as entries,
    sum(debit) as debit,
    sum(credit) as credit
from entries
group by
    date,
    account,
    account_type,
    currency
order by
    date,
    account,
    currency
