"""Health data access body (EHDS): data access applications, permits as verifiable
credentials, central analysis tasks over data stations, and the audit of permits."""
