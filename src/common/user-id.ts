export const USER_ID_PATTERN = /^[A-Za-z0-9_.@:-]{1,128}$/;
export const USER_ID_MESSAGE = `must match ${USER_ID_PATTERN.source}`;
