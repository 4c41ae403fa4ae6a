"""Task sampling: difficulty tracking, failure curriculum filtering (FCF), stages."""
