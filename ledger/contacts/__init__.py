"""Billing by contacts (seed 002): who counts as a billable contact, the
subscription's anniversary periods, what each renewal bills, and the
`ContactsAccount` aggregate."""
