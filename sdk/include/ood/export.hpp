#pragma once
// Symbol visibility for the SDK library. Plugins are built with hidden visibility;
// everything a plugin shares with the host (interfaces, exception types) is exported
// from libood-sdk so that typeinfo exists exactly once and `catch`/`dynamic_cast`
// work across library boundaries.
#define OOD_SDK_API __attribute__((visibility("default")))
