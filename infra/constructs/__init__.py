"""One construct per capability of the Conveyor stack."""
