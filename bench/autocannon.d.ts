// autocannon ships no type declarations; bench/load.ts is its only user.
declare module 'autocannon';
