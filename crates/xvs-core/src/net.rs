//! Ports, routes and neighbours.
