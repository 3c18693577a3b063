"""Read models built from the ledger's history (balance, monthly usage,
documents, contacts, payments, notices), the runner that keeps them current, the
outbound publisher of account status, and the reporting queries over them."""
