"""Parameter groups, optimizer and schedules."""
