"""The words every stage shares: money, durations, appointments, actions, and the interfaces adapters implement. Imports nothing else of Slotguard."""
