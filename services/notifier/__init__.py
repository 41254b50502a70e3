"""The notifier: turns ``ripples.recognition.due.v1`` events into messages (Slack, Teams,
e-mail, webhook) in the employee's language, at most once per recognition id."""
