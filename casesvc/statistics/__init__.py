"""Statistics for the municipal action plan (README "Statistics"): counts and waits
over the cases of one or more municipalities, with disclosure control, as JSON, CSV and a
printable report. No case content leaves through here."""
