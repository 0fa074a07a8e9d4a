"""HTTP routes: each module is one blueprint."""
