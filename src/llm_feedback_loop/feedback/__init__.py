"""The feedback store: the payloads it accepts (`payloads`, `validation`), the rows built from them (`rows`,
`links` for answers named by generation_id), writing them (group commit) and reading them back (filters,
pages, streams). No HTTP: a refusal is a `FeedbackError` the API answers with its status."""
