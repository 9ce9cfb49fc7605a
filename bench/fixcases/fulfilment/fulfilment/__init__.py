"""Fulfilment: the warehouse worker that takes messages off the queue and reserves, packs and ships."""
