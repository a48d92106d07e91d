export * from './addr';
