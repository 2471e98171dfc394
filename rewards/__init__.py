"""Rewards: the points catalog and reward codes (`rewards.catalog`) and gift cards."""
