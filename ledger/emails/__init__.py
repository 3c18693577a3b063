"""The email API's billing (seed 001): the `Account` aggregate, its monthly usage and
its pricing by tiers, included emails and the custom SMTP route."""
