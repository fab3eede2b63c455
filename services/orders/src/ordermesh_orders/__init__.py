"""ordermesh orders service: the OMS core."""
