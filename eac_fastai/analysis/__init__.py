"What a finished run shows: outputs, memorisation, label issues, figures, reports, tables, predictions."
